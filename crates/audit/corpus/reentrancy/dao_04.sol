pragma solidity ^0.4.24;

// A bank that pays out before it forgets the balance.
contract EtherBank {
    mapping(address => uint256) public balances;

    function deposit() public payable {
        balances[msg.sender] = balances[msg.sender] + msg.value;
    }

    function withdraw() public {
        uint256 amount = balances[msg.sender];
        require(amount > 0);
        if (!msg.sender.call.value(amount)()) throw; // expect: reentrancy
        balances[msg.sender] = 0;
    }
}
