pragma solidity ^0.6.12;

contract Pool {
    mapping(address => uint256) public balances;

    function deposit() external payable {
        balances[msg.sender] += msg.value;
    }

    function withdraw(uint256 amount) external {
        require(balances[msg.sender] >= amount, "funds");
        msg.sender.call{value: amount}(""); // expect: reentrancy // expect: unchecked-calls
        balances[msg.sender] -= amount;
    }
}
