pragma solidity ^0.4.24;

// The window is measured in blocks, which a miner cannot stretch.
contract LastInvestor {
    address public lastInvestor;
    uint256 public lastInvestmentBlock;

    function invest() public payable {
        require(msg.value >= 1 ether);
        lastInvestor = msg.sender;
        lastInvestmentBlock = block.number;
    }

    function claim() public {
        require(block.number > lastInvestmentBlock + 240);
        lastInvestor.transfer(this.balance);
    }
}
