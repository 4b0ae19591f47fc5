pragma solidity ^0.6.10;

contract SavingsBank {
    mapping(address => uint256) private balances;

    function deposit() external payable {
        balances[msg.sender] += msg.value;
    }

    function move(address to, uint256 amount) external {
        require(balances[msg.sender] >= amount, "funds");
        balances[msg.sender] -= amount;
        balances[to] += amount;
    }

    function withdrawAll() external {
        uint256 bal = balances[msg.sender];
        require(bal > 0, "empty");
        (bool sent, ) = msg.sender.call{value: bal}(""); // expect: reentrancy
        require(sent, "failed");
        balances[msg.sender] = 0;
    }
}
